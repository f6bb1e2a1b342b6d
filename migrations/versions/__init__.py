"""The revisions of agree's own tables, oldest first (``v<rev>_<slug>.py``)."""
