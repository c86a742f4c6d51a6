from marquee_platform.migrations import run_env

from marquee_auth.models import Base

run_env(Base.metadata)
