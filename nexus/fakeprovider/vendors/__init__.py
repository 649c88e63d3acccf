"""Fake vendors, one module each, all built on ``vendors.base.Vendor``.

To add a vendor, write a module with a ``Vendor`` subclass and list it in
``VENDOR_CLASSES``. The server mounts its endpoints, and every vendor shares the
request recorder and the script queue.
"""

from nexus.fakeprovider.vendors.anthropic import AnthropicVendor
from nexus.fakeprovider.vendors.azure import AzureOpenAIVendor, EntraVendor
from nexus.fakeprovider.vendors.base import Vendor
from nexus.fakeprovider.vendors.bedrock import BedrockVendor
from nexus.fakeprovider.vendors.cohere import CohereVendor
from nexus.fakeprovider.vendors.compatible import COMPATIBLE_VENDOR_CLASSES
from nexus.fakeprovider.vendors.gemini import GeminiVendor
from nexus.fakeprovider.vendors.glm import GLMVendor
from nexus.fakeprovider.vendors.google_oauth import GoogleOAuthVendor
from nexus.fakeprovider.vendors.minimax import MiniMaxVendor
from nexus.fakeprovider.vendors.openai import OpenAIVendor
from nexus.fakeprovider.vendors.replicate import ReplicateVendor
from nexus.fakeprovider.vendors.vertex import VertexVendor
from nexus.fakeprovider.vendors.voyage import VoyageVendor

VENDOR_CLASSES: tuple[type[Vendor], ...] = (
    OpenAIVendor,
    AnthropicVendor,
    GeminiVendor,
    VertexVendor,
    GoogleOAuthVendor,
    AzureOpenAIVendor,
    EntraVendor,
    BedrockVendor,
    CohereVendor,
    MiniMaxVendor,
    GLMVendor,
    ReplicateVendor,
    VoyageVendor,
    *COMPATIBLE_VENDOR_CLASSES,
)
