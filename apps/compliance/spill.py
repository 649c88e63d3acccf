"""The spill store for captured bodies: a directory, or an S3-compatible bucket."""

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage


def spill_storage() -> Storage:
    """Return the configured spill storage."""
    if settings.NEXUS_SPILL_S3_BUCKET:
        from storages.backends.s3 import S3Storage

        return S3Storage(
            bucket_name=settings.NEXUS_SPILL_S3_BUCKET,
            endpoint_url=settings.NEXUS_SPILL_S3_ENDPOINT_URL or None,
            region_name=settings.NEXUS_SPILL_S3_REGION or None,
            access_key=settings.NEXUS_SPILL_S3_ACCESS_KEY_ID or None,
            secret_key=settings.NEXUS_SPILL_S3_SECRET_ACCESS_KEY or None,
            file_overwrite=True,
            default_acl=None,
        )
    return FileSystemStorage(location=settings.NEXUS_SPILL_DIR)


def write_spill(key: str, data: bytes) -> str:
    """Store data under key, replacing what was there; return the stored name."""
    storage = spill_storage()
    if storage.exists(key):
        storage.delete(key)
    return storage.save(key, ContentFile(data))


def read_spill(key: str) -> bytes:
    with spill_storage().open(key, "rb") as handle:
        return handle.read()
