"""Preference tuning on local models: reward models, DPO (with an SFT anchor) and GRPO, on trl.

One module per job: ``pairs`` (the data), ``engine`` (what every trl run shares), one module per
method, ``judge`` (greedy answers and the figures every report carries) and ``scorer`` (a trained
reward model as a grader).
"""
