"""Write each role's variable tables into its README from meta/argument_specs.yml.

The README keeps its hand-written text; only the part between the two markers is generated.
Usage: python tools/role_readme.py [--check]   (--check: exit 1 when a README is out of date)
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN GENERATED FROM meta/argument_specs.yml: run tools/role_readme.py -->"
END = "<!-- END GENERATED -->"


def cell(value):
    text = " ".join(str(value).split()) if value is not None else ""
    return text.replace("|", "\\|")


def describe(text):
    if isinstance(text, list):
        text = " ".join(text)
    return re.sub(r"[CIVO]\(([^)]*)\)", r"`\1`", cell(text))


def table(entry, spec):
    lines = ["### Entry point `%s`" % entry, "", describe(spec.get("short_description", "")), ""]
    options = spec.get("options") or {}
    if not options:
        return lines + ["No variables.", ""]
    lines += ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, opt in sorted(options.items()):
        kind = opt.get("type", "str")
        if opt.get("elements"):
            kind += " of " + opt["elements"]
        default = "(required)" if opt.get("required") else ("`%s`" % (cell(opt["default"]) or '""') if "default" in opt else "")
        desc = describe(opt.get("description", ""))
        if opt.get("choices"):
            desc += " Choices: %s." % ", ".join("`%s`" % c for c in opt["choices"])
        lines.append("| `%s` | %s | %s | %s |" % (name, kind, default, desc))
    return lines + [""]


def generated(role):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    lines = [BEGIN, "## Variables", ""]
    for entry in sorted(specs, key=lambda e: (e != "main", e)):
        lines += table(entry, specs[entry])
    return "\n".join(lines + [END])


def main(argv):
    check = "--check" in argv
    stale = []
    for role in sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml")):
        readme = role / "README.md"
        text = readme.read_text() if readme.exists() else "# %s\n\n%s\n%s\n" % (role.name, BEGIN, END)
        if BEGIN not in text or END not in text:
            stale.append("%s lacks the generated-section markers" % readme)
            continue
        new = text[:text.index(BEGIN)] + generated(role) + text[text.index(END) + len(END):]
        if new != text:
            stale.append(str(readme.relative_to(ROOT)))
            if not check:
                readme.write_text(new)
    if check and stale:
        print("out of date (run python tools/role_readme.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
