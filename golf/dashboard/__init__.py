"""Saved W&B dashboards of a sweep launch: a Workspace and a Report (golf.dashboard.views), written offline as
specs next to the jobs, published online on demand (golf.dashboard.publish). Built after every multirun by
golf.dashboard.callback and by `python -m golf.dashboard <sweep dir> [publish]`."""
