"""Work orders: proposed by the assistant, opened only when a person approves them."""
