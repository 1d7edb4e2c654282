"""One collector per bundle component: each puts its files in the staging folder and lists them.

A collector downloads through the ordinary client of its registry (pip, apt,
mvn, go), keeps what it downloaded in ``.cache/bundle/`` for the next build,
and returns a :class:`~sovstack.bundle.collectors.base.Collected`: the files
it placed (with version and origin) and the packages they are, for the SBOM.
"""
