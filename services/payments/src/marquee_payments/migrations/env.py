from marquee_payments.models import Base
from marquee_platform.migrations import run_env

run_env(Base.metadata)
