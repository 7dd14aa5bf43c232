import copy
from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture
def smoke():
    """The cpu-smoke recipe as a mapping, and a function that parses it with changes."""
    from reasonloop.recipe.config import parse_recipe

    base = yaml.safe_load((RECIPES / "cpu-smoke.yaml").read_text())

    def data(**sections):
        out = copy.deepcopy(base)
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key].update(value)
            else:
                out[key] = value
        return out

    def make(**sections):
        return parse_recipe(data(**sections))

    def write(path, **sections):
        path.write_text(yaml.safe_dump(data(**sections)))
        return path

    make.write = write
    return make
