from marquee_platform.migrations import run_env

from marquee_payments.models import Base

run_env(Base.metadata)
