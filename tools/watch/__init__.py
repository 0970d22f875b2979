"""The site watch: faults and drift found in sensor readings, and the alerts they raise."""
