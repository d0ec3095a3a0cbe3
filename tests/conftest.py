import os
import jax

jax.config.update("jax_enable_x64", True)

from hypothesis import settings

# The one place that sets how hard the property tests search (no test sets max_examples itself). The tests draw
# values, not shapes (or a few fixed shapes), so the jitted functions compile once per shape and an example
# costs milliseconds: max_examples is the cost knob. No deadline: the first example of a shape compiles.
#   ci        (default, make test): 25 examples per test, the same ones every run (derandomize)
#   dev       quick local runs: 10 random examples
#   thorough  a long search: HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests/ (1000 random examples)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
