"""Outbound notifications: the channels' secrets at rest and sending through Apprise.

The rules and the outbox are data (``longops.domain.notify``) and SQL (``longops.store``);
the delivery service (``longops.services.delivery``) ties them to what is here.
"""
