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


#: seconds nbval waits for each output message of a cell that has finished (nbval's own is 5): on 2 busy cores a
#: cell that drew hundreds of progress-bar updates (notebook 3's compare) can leave its last messages queued
#: longer than that, and nbval then fails the finished cell with "Timeout of 5 seconds exceeded waiting for
#: output" (seen once in a clean-clone `make test` while other jobs shared the cores)
NBVAL_OUTPUT_TIMEOUT = 60


def pytest_collection_modifyitems(config, items):
    """Give nbval's cells :data:`NBVAL_OUTPUT_TIMEOUT` to deliver their outputs; the cell timeout stays nbval's."""
    for item in items:
        if type(item).__name__ == "IPyNbCell" and hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT
