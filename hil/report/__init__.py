"""The run record (single source of truth) and its views: Allure, summary."""
