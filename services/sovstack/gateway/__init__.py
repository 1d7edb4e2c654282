"""The gateway: the one door to the models.

Every request is authenticated (``auth``), authorized (``authz``, OPA at the
``endpoints`` its settings name), audited (``auditing``) and only then proxied
(``proxy``) to a replica chosen by ``upstreams``. ``config`` is its one
settings class; ``state.GatewayState.open`` opens everything it holds and
``app.create_app`` puts it together.
"""
