-- Settings are defined in src/settings.rs; SQL reads them through kt_setting().
COMMENT ON FUNCTION kt_setting(text) IS 'Current value of the setting kt_governance.<name> as text (e.g. kt_setting(''premake'')). Calling it loads the library, so every setting exists with its default; an unknown name is an error (42704).';
