"""Unlearning methods: one small file each, all subclasses of ``UnlearnTrainer``."""
