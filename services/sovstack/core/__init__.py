"""Cross-cutting pieces shared by the services: settings."""
