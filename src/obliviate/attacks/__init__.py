"""Attacks on an unlearned model: does the forgetting survive?

Each attack is one small file and a config in ``configs/attack/`` (``attack=relearn|quantize|
rephrase`` on the eval command); the evaluation runner builds the one the config names from its
``_target_`` (:func:`obliviate.attacks.base.build_attack`), runs the selected benchmark suites
before and after the attack and writes ``ATTACK_<name>.json`` beside their results.

- :mod:`~obliviate.attacks.relearn`: finetune a copy of the model for a few steps on a seeded
  sample of the forget items (or retain / unrelated data), then evaluate on the items it did NOT
  see (Hu et al. 2024, arXiv 2406.13356; Lynch et al. 2024, arXiv 2402.16835);
- :mod:`~obliviate.attacks.quantize`: round the weights to 4 or 8 bits with torchao (Zhang et
  al. 2024, arXiv 2410.16454);
- :mod:`~obliviate.attacks.rephrase`: score and generate the forget answers under paraphrased
  questions and other prompt formats, report the largest recovery;
- :mod:`~obliviate.attacks.recovery`: the recovered share, a pure formula;
- :mod:`~obliviate.attacks.base`: what every attack shares (settings, the before/after report).
"""
