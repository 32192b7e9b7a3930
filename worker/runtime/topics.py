"""The pipeline's topics, by name, each declared the first time a feature asks for it.

All carry raw bytes: a stage decodes with its records' decoders, so a bad message becomes a dead
letter with its reason instead of an exception inside Faust. All have `TOPIC_PARTITIONS` partitions
and are created (when missing) as the worker starts, before its web server answers.
`topics.payouts_approved` is the topic `payouts-approved` (with `TOPIC_PREFIX` in front).
"""

from __future__ import annotations

from faust.types import TopicT

from worker.runtime.app import PipelineApp


class Topics:
    """Pipeline topics (`topics["orders"]`, `topics.orders`) and the app's internal ones."""

    def __init__(self, app: PipelineApp) -> None:
        self._app = app
        self._declared: dict[str, TopicT] = {}

    def __getitem__(self, name: str) -> TopicT:
        topic = self._declared.get(name)
        if topic is None:
            topic = self._declared[name] = self._declare(self._app.settings.topic_name(name))
        return topic

    def __getattr__(self, attribute: str) -> TopicT:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return self[attribute.replace("_", "-")]

    def joined(self, *names: str | TopicT) -> TopicT:
        """One source over several topics (a stage that reads them all): pipeline topics by name, or
        topics declared elsewhere (an internal topic, a table's changelog)."""
        full = [(self[name] if isinstance(name, str) else name).get_topic_name() for name in names]
        return self._app.topic(
            *full, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    def internal(self, name: str) -> TopicT:
        """The app's own topic `<APP_ID>-<name>`, feeding a stage of this app only (a repartition)."""
        return self._declare(f"{self._app.conf.id}-{name}", internal=True)

    def all(self) -> tuple[TopicT, ...]:
        """Every pipeline topic declared so far."""
        return tuple(self._declared.values())

    def _declare(self, full_name: str, *, internal: bool = False) -> TopicT:
        topic = self._app.topic(
            full_name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self._app.settings.topic_partitions,
            internal=internal,
        )
        self._app.create_on_start([topic])
        return topic
