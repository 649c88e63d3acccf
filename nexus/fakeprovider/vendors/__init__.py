"""Fake vendors, one module each, all built on ``vendors.base.Vendor``.

To add a vendor, write a module with a ``Vendor`` subclass and list it in
``VENDOR_CLASSES``. The server mounts its endpoints, and every vendor shares the
request recorder and the script queue.
"""

from nexus.fakeprovider.vendors.anthropic import AnthropicVendor
from nexus.fakeprovider.vendors.base import Vendor
from nexus.fakeprovider.vendors.openai import OpenAIVendor

VENDOR_CLASSES: tuple[type[Vendor], ...] = (OpenAIVendor, AnthropicVendor)
