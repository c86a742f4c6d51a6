from marquee_inventory.models import Base
from marquee_platform.migrations import run_env

run_env(Base.metadata)
