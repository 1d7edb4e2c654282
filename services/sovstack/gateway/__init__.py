"""The gateway: the one door to the models.

Every request is authenticated (``auth``), authorized (``authz``), audited
(``auditing``) and only then proxied (``proxy``) to a replica chosen by
``upstreams``. ``app.create_app`` puts it together.
"""
