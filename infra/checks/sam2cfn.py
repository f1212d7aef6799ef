"""Expands a SAM template into plain CloudFormation offline (aws-sam-translator, as `sam deploy`
would), so cfn-lint can check what SAM generates: cfn-lint 1.x reads SAM resources with its own
schema and misses, for example, a bad !Ref inside Environment.Variables or a bad Runtime.

Usage: AWS_DEFAULT_REGION=us-east-1 python sam2cfn.py template.yaml expanded.json
(the SAM venv's python). CodeUri is replaced by a placeholder S3 location: the built artifacts
are not needed to translate.
"""
import json
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform


class NoNetworkPolicyLoader:
    """Managed-policy lookups would call IAM; the template names no managed policies."""

    def load(self):
        return {}


def main() -> int:
    template, errors = decode(sys.argv[1])
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    template = json.loads(json.dumps(template, default=str))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/placeholder.zip"
    expanded = transform(template, {}, NoNetworkPolicyLoader())
    with open(sys.argv[2], "w") as out:
        json.dump(expanded, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
