"""pytest's hooks for the whole checkout (tests/ and the notebooks under nbval)."""


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``make test``: ``-n 2``) a file's tests stay on one worker, so a module's fixture (one
    ci run for test_compare) is built once, and the six notebooks go to one worker together, in their order:
    notebooks 4-6 read the run folder that notebook 3 fills. (Marks and ``--dist loadgroup`` cannot do the
    second: pytest 9's structured node ids ignore the group suffix xdist appends.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndNotebooks(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if nodeid.startswith("notebooks/") else nodeid.split("::", 1)[0]

    return FilesAndNotebooks(config, log)
