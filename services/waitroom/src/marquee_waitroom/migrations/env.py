from marquee_platform.migrations import run_env
from marquee_waitroom.models import Base

run_env(Base.metadata)
