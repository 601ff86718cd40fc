"""Screens of the kdtui app, one module each, and what they share: ``live`` (following the
app's snapshot), ``table`` (grid, filter and sort of the runs, results and TODO screens)
and ``run_actions`` (stop, resume, more seeds, edit as new).

Every screen reads the store through the app's snapshot (refreshed by one background poll)
and writes through workers, so no screen ever blocks on the store. Screens import the
snapshot and the messages of ``kdtui.tui``, never the app, nor each other.
"""
