import importlib.util
import pathlib

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
