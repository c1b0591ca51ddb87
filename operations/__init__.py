"""Operations on a deployed FreeScout stack: the plan guard, the rebuild driver and its adapters."""
