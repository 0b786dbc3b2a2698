"""``obliviate demo`` and ``obliviate compare``: the project's main job as one command.

- :mod:`obliviate.demo.stages` composes the same Hydra configs as ``src/train.py`` and
  ``src/eval.py`` and runs them through :func:`obliviate.training.run_training` and
  :func:`obliviate.eval.runner.run_eval`, skipping any stage whose result is already on disk
  (same inputs), so a second run is fast;
- :mod:`obliviate.demo.pipeline` is the demo story: data -> target -> retain model -> unlearn
  with each method -> evaluate each -> compare; and the guide's section 6 loop (``compare``);
- :mod:`obliviate.demo.report` turns evaluation folders into the comparison table (markdown +
  JSON) and the forget-quality / model-utility plot;
- :mod:`obliviate.demo.cli` parses the command lines.
"""
