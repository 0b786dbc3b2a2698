"""Sweeps: many training runs from one ``-m`` command, each point followed by its evaluation.

``points``  the command's overrides -> the sweep's points and folder names (Hydra's parser)
``record``  what makes a finished point reusable (config, code and data hashes) and point.json
``job``     one point: train (or reuse), evaluate (or reuse), record
``run``     the whole sweep through Hydra's sweeper and launcher plugins, and sweep.json
``select``  the rules that pick one point from a finished sweep
``table``   the rows a sweep's comparison is made of (``obliviate compare <sweep folder>``)
"""
