"""Pure rules, below the models: run states and their transitions (`states`), schedule
recurrence (`recurrence`) and the time model (`clock`). Nothing here touches the database,
Redis, Flask or a request; everything else may import these modules."""
