"""Recipes: one YAML file runs the whole loop (imitate → explore → self-improve, evaluated after
every stage) into one resumable run directory. See :mod:`reasonloop.recipe.config` for the schema,
:mod:`reasonloop.recipe.runner` for the steps, ``recipes/`` for examples."""

from reasonloop.recipe.config import DemoRecipe, LoopRecipe, load_recipe, parse_recipe
from reasonloop.recipe.runner import Loop, dry_run, run_recipe

__all__ = [
    "DemoRecipe",
    "Loop",
    "LoopRecipe",
    "dry_run",
    "load_recipe",
    "parse_recipe",
    "run_recipe",
]
