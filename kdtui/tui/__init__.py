"""The Textual app: ``app`` (KdApp, run_app), ``snapshot`` (what the screens read) and
``messages`` (what the screens ask of the app). Screens import the last two, never the
app: attributes go down, messages go up."""
