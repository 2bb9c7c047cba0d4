"""Policy files: schema, loading with file/line errors, the pure decision engine and hot reload."""
