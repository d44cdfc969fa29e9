"""Orchestration: everything that joins runners (the simulator, live backends),
expectations and reports — ``compare``, ``simulate``, ``check``, ``validate``, ``live``
sessions and the pytest plugin. The CLI only parses arguments and calls these.
"""
