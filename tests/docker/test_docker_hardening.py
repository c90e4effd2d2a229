"""Docker jobs hardened by default, checked on a real dockerd (issue 17)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from container_manager.validators import validate_image_reference

pytestmark = [pytest.mark.docker, pytest.mark.django_db]


@pytest.mark.parametrize(
    "image",
    ["MyRepo/app", "Cm-test/busybox:latest", "LOCALHOST/app", "example.com/App:1",
     "Registry.Example.com:5000/team/app", "localhost:5000/app", "cm-test/nothing:1"],
)
def test_image_check_agrees_with_docker(docker_engine, image):
    """Our image check refuses exactly what the engine calls an invalid reference."""
    import docker

    try:
        validate_image_reference(image)
        ours = True
    except ValidationError:
        ours = False
    with pytest.raises(docker.errors.APIError) as info:  # none of these images exists
        docker_engine.client().create_container(image, ["true"])
    engine = "invalid reference format" not in str(info.value)
    assert ours == engine, str(info.value)
