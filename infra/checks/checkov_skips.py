"""Fails when an inline checkov skip in a CloudFormation/SAM template does not say why: every
`Metadata.checkov.skip` entry needs an `id` and a `comment` of at least a few words.

Usage: python checkov_skips.py template.yaml   (any venv with cfn-lint, e.g. the SAM one)
"""
import sys

from cfnlint.decode import decode


def main() -> int:
    template, errors = decode(sys.argv[1])
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    bad, count = [], 0
    for name, resource in template.get("Resources", {}).items():
        skips = (resource.get("Metadata") or {}).get("checkov", {}).get("skip", [])
        for skip in skips:
            count += 1
            comment = str(skip.get("comment", "")).strip()
            if not skip.get("id") or len(comment.split()) < 4:
                bad.append(f"{name}: checkov skip {skip.get('id')!r} needs a comment saying why")
    for line in bad:
        print(line, file=sys.stderr)
    if not bad:
        print(f"{count} inline checkov skips, each with its reason")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
