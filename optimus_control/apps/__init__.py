"""Composition: the programs that put the libraries and nodes together.

``demo`` (the factory demo through the launcher), ``pick_demo`` (one pick-and-place in process),
``episode`` (the factory job in one process, for seeded evaluation), ``run_report`` (the demo's run
folder), ``evaluation`` (the ground-truth definitions of a fall and of the score), ``preflight`` (every
input file checked before a run starts) and ``user_errors`` (what every entry point prints for a bad
file). Nothing here is imported by the libraries or the nodes.
"""
