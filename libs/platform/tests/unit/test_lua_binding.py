"""Named keys and arguments, Cluster slots and hash tags: checked before Redis is asked."""

from __future__ import annotations

import pytest

from marquee_platform.lua import LuaScript, hash_tag, tagged_key

ADD_TO_BOTH = LuaScript(
    "test-add-to-both",
    keys=("first", "second"),
    args=("amount", "label"),
    source="return 1",
)


def test_keys_and_arguments_are_checked_by_name_before_redis_is_asked() -> None:
    tag = hash_tag("evt", "1")
    with pytest.raises(TypeError, match=r"missing \['label'\]"):
        ADD_TO_BOTH.bind(first=f"{tag}:a", second=f"{tag}:b", amount=1)
    with pytest.raises(TypeError, match=r"unknown \['colour'\]"):
        ADD_TO_BOTH.bind(first=f"{tag}:a", second=f"{tag}:b", amount=1, label="x", colour="red")
    with pytest.raises(TypeError, match="argument amount must be"):
        ADD_TO_BOTH.bind(first=f"{tag}:a", second=f"{tag}:b", amount=None, label="x")
    keys, args = ADD_TO_BOTH.bind(label="x", amount=1, second=f"{tag}:b", first=f"{tag}:a")
    assert (keys, args) == ([f"{tag}:a", f"{tag}:b"], [1, "x"])


def test_keys_of_two_cluster_slots_are_refused_unless_declared() -> None:
    with pytest.raises(ValueError, match="span several Redis Cluster slots"):
        ADD_TO_BOTH.bind(first="{evt:1}:a", second="{evt:2}:a", amount=1, label="x")
    anywhere = LuaScript("test-anywhere", source="return 1", keys=("a", "b"), cluster_safe=False)
    assert anywhere.bind(a="{evt:1}:a", b="{evt:2}:a") == (["{evt:1}:a", "{evt:2}:a"], [])


def test_hash_tags() -> None:
    assert hash_tag("evt", 123) == "{evt:123}"
    assert tagged_key(hash_tag("evt", 123), "seat", 7) == "{evt:123}:seat:7"
    with pytest.raises(ValueError, match="braces"):
        hash_tag("evt", "1}2")
    with pytest.raises(ValueError, match="not a hash tag"):
        tagged_key("evt:1", "seat")
