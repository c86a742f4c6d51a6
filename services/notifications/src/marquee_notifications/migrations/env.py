from marquee_notifications.models import Base
from marquee_platform.migrations import run_env

run_env(Base.metadata)
