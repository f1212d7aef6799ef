"""Prints a CloudFormation/SAM template as JSON, short-form tags (!Ref, !Sub, ...) decoded the
way cfn-lint reads them ({"Ref": ...}, {"Fn::Sub": ...}). Used by crates/store/tests/template.rs
to compare template.yaml with the Parquet writer and the tier table.

Usage: python template_json.py template.yaml   (the SAM venv's python: it has cfn-lint)
"""
import json
import sys

from cfnlint.decode import decode


def main() -> int:
    template, errors = decode(sys.argv[1])
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    json.dump(template, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
