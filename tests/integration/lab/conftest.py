"""Reuse the HTTP wing's fixture: a real uvicorn server on a loopback port serving a real bus."""

from tests.integration.http.conftest import Service, ServiceFactory, start_service

__all__ = ["Service", "ServiceFactory", "start_service"]
