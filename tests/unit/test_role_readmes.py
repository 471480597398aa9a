import importlib.util
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("role_readme", ROOT / "tools" / "role_readme.py")
role_readme = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(role_readme)


def test_every_role_has_argument_specs():
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    assert roles
    assert [r for r in roles if not (ROOT / "roles" / r / "meta" / "argument_specs.yml").exists()] == []


def test_role_readmes_match_their_argument_specs():
    assert role_readme.main(["--check"]) == 0


def test_argument_spec_defaults_are_the_role_defaults():
    # A default in the spec that differs from defaults/main.yml documents a value the role never uses.
    drift = []
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        defaults = {}
        for path in sorted((role / "defaults").glob("**/*.yml")):
            defaults.update(yaml.safe_load(path.read_text()) or {})
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        for entry in specs.values():
            for name, option in entry.get("options", {}).items():
                if name in defaults and option.get("default") != defaults[name]:
                    drift.append("%s: %s spec %r, defaults %r" % (role.name, name, option.get("default"), defaults[name]))
    assert drift == []
