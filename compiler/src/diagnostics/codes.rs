//! The registry of diagnostic codes: explicit, never reused. E00xx syntax, E01xx names and
//! imports, E02xx types and mappings, E03xx JSONPath and templates, E04xx flow graph,
//! E05xx connections, policies and secrets, E06xx inventory ledgers; W0xxx mirror those
//! ranges.

/// A stable diagnostic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    /// `E0203`
    pub id: &'static str,
    /// `missing-required-field`
    pub name: &'static str,
    /// One line on what the problem is.
    pub summary: &'static str,
}

macro_rules! codes {
    ($($konst:ident = $id:literal, $name:literal, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $konst: Code = Code { id: $id, name: $name, summary: $summary };
        )*
        /// Every code, in registry order.
        pub const ALL: &[Code] = &[$($konst),*];
    };
}

codes! {
    SYNTAX_ERROR = "E0001", "syntax-error", "the text does not follow the grammar";
    UNTERMINATED_STRING = "E0002", "unterminated-string", "a string literal has no closing quote on its line";
    NUMBER_OUT_OF_RANGE = "E0003", "number-out-of-range", "an integer literal does not fit in 64 bits";
    EXPRESSION_TOO_DEEP = "E0004", "expression-too-deep", "an expression nests deeper than the compiler and runtime accept";

    UNKNOWN_TYPE = "E0101", "unknown-type", "a type name is not declared or imported";
    UNKNOWN_CONNECTOR = "E0102", "unknown-connector", "a connection names a connector that is not imported";
    UNKNOWN_CONNECTION = "E0103", "unknown-connection", "a source or sink names a connection that is not declared";
    UNKNOWN_NODE = "E0104", "unknown-node", "a node reads from or routes to a node the flow does not declare";
    UNKNOWN_POLICY = "E0105", "unknown-policy", "a sink names a retry policy that is not declared or imported";
    UNKNOWN_NAME = "E0106", "unknown-name", "an expression uses a name that is not in scope";
    UNKNOWN_MODULE = "E0107", "unknown-module", "a `use` names a module that does not exist";
    UNKNOWN_IMPORT = "E0108", "unknown-import", "a `use` lists an item the module does not declare";
    UNKNOWN_FUNCTION = "E0109", "unknown-function", "an expression calls a function that does not exist";
    DUPLICATE_DEFINITION = "E0110", "duplicate-definition", "a name is declared twice in the same scope";
    UNKNOWN_OPERATION = "E0111", "unknown-operation", "a source or sink names an operation the connector does not have";
    UNKNOWN_SETTING = "E0112", "unknown-setting", "a settings block sets a key the construct does not accept";
    IMPORT_CYCLE = "E0113", "import-cycle", "files import each other in a cycle";
    UNKNOWN_TABLE = "E0114", "unknown-table", "a lookup names a table that is not declared or imported";
    UNKNOWN_VARIANT = "E0115", "unknown-variant", "a string is not a variant of the enum it is assigned to";
    FILE_NOT_FOUND = "E0116", "file-not-found", "an imported, table or fixture file cannot be read";
    FILE_OUTSIDE_DIRECTORY = "E0117", "file-outside-directory", "a file a flow names is absolute, uses `..` or resolves through a symlink outside the flow's directory";
    UNSUPPORTED_FILE = "E0118", "unsupported-file", "a file a flow names is not a regular file (a FIFO, device, socket or directory) or is over the size limit";

    TYPE_MISMATCH = "E0201", "type-mismatch", "an expression has a different type than its place requires";
    UNKNOWN_FIELD = "E0202", "unknown-field", "a field is not declared in the schema";
    MISSING_REQUIRED_FIELD = "E0203", "missing-required-field", "a mapping does not set a required field of its schema";
    FLOAT_INTO_MONEY = "E0204", "float-into-money", "a decimal or float is used where money (integer minor units plus currency) is required";
    WRONG_ARGUMENT_COUNT = "E0205", "wrong-argument-count", "a function is called with the wrong number of arguments";
    CONDITION_NOT_BOOL = "E0206", "condition-not-bool", "a condition is not a boolean";
    INVALID_OPERAND = "E0207", "invalid-operand", "an operator is applied to values it does not accept";
    OPERATION_TYPE_MISMATCH = "E0208", "operation-type-mismatch", "a connector operation receives a type other than the one its signature declares";
    NOT_A_LIST = "E0209", "not-a-list", "an element-wise construct is applied to something that is not a list";
    INVALID_TABLE = "E0210", "invalid-table", "a lookup table's data does not match its declared types";
    MISSING_SETTING = "E0211", "missing-setting", "a required setting is not given";
    INVALID_TEST = "E0212", "invalid-test", "a test block is incomplete or its fixture is not valid";
    DUPLICATE_FIELD = "E0213", "duplicate-field", "a field is set twice in one record";
    NOT_A_RECORD = "E0214", "not-a-record", "a field is read from a value that has no fields";
    DUPLICATE_TABLE_KEY = "E0215", "duplicate-table-key", "a lookup table's data file gives the same key twice";
    UNKNOWN_CURRENCY = "E0216", "unknown-currency", "a money literal names a currency that is not an active ISO 4217 code";
    AMOUNT_BEYOND_MINOR_UNIT = "E0217", "amount-beyond-minor-unit", "a literal amount has more decimals than its currency's minor unit";

    INVALID_JSONPATH = "E0301", "invalid-jsonpath", "a JSONPath selector does not parse";
    INVALID_TEMPLATE = "E0302", "invalid-template", "a string template does not parse";
    UNKNOWN_TEMPLATE_VARIABLE = "E0303", "unknown-template-variable", "a string template uses a variable that is not in scope";
    UNKNOWN_TEMPLATE_FIELD = "E0304", "unknown-template-field", "a string template reads a field its variable's type does not have";
    TEMPLATE_NOT_RENDERED = "E0305", "template-not-rendered", "an option the runtime reads as plain text contains a template";
    JSONPATH_TOO_COSTLY = "E0307", "jsonpath-too-costly", "a JSONPath selector could cost too much per message (several `..` steps, a huge index or slice)";
    TEMPLATE_TOO_LARGE = "E0308", "template-too-large", "a string template is longer than the template size limit";

    UNUSED_OUTPUT = "E0402", "unused-output", "a node's output reaches no sink";
    MISSING_IDEMPOTENCY_KEY = "E0403", "missing-idempotency-key", "a sink has no idempotency key";
    MISSING_ERROR_PATH = "E0404", "missing-error-path", "a sink has no dead-letter target";
    ROUTE_TARGET_MISMATCH = "E0405", "route-target-mismatch", "a route sends to a node that does not read from that route";
    FLOW_CYCLE = "E0406", "flow-cycle", "the nodes of a flow read from each other in a cycle";
    MISSING_SOURCE = "E0407", "missing-source", "a flow has no source";
    WRONG_NODE_KIND = "E0408", "wrong-node-kind", "a node is used where another kind of node is required";

    LITERAL_SECRET = "E0501", "literal-secret", "a secret is written as a literal instead of `secret(...)` or `env(...)`";
    POLICY_OUT_OF_RANGE = "E0502", "policy-out-of-range", "a retry policy setting is outside its allowed range";
    RATE_OUT_OF_RANGE = "E0503", "rate-out-of-range", "a rate limit or concurrency is outside its allowed range";
    TIMEOUT_OUT_OF_RANGE = "E0504", "timeout-out-of-range", "a timeout or interval is outside its allowed range";
    INVALID_SETTING = "E0505", "invalid-setting", "a setting has a value of the wrong kind";
    SOURCE_KIND_MISMATCH = "E0506", "source-kind-mismatch", "a source option does not apply to the source's kind";
    USER_CONNECTOR = "E0507", "user-connector", "a connector declared in a flow has an operation with no `request`, so the runtime could not run it";
    LITERAL_OUT_OF_RANGE = "E0508", "literal-out-of-range", "a decimal or duration literal does not fit what the runtime represents exactly";
    SETTING_OUT_OF_RANGE = "E0509", "setting-out-of-range", "a connection setting or option is outside what the runtime accepts";
    SIZE_OUT_OF_RANGE = "E0510", "size-out-of-range", "a size limit in bytes is outside its allowed range";
    INVALID_CRON = "E0512", "invalid-cron", "a schedule's cron expression does not parse or matches no date";
    UNKNOWN_TIME_ZONE = "E0513", "unknown-time-zone", "a schedule names a time zone the IANA time zone database does not know";
    SOURCE_OVERWRITES = "E0514", "source-overwrites", "a connector's source operation declares `overwrites`, which only a sink operation can";
    INVALID_CONNECTOR = "E0515", "invalid-connector", "a declared connector's auth, request, paging, watermark, rule or lookup is incomplete or has a value of the wrong kind";
    INVALID_GRAPHQL = "E0516", "invalid-graphql", "a declared connector's GraphQL operation does not parse or its variables do not match";

    UNKNOWN_LOCATION = "E0601", "unknown-location", "a ledger channel or safety-stock table names a location the ledger does not keep";
    UNKNOWN_CHANNEL = "E0602", "unknown-channel", "a reservation names a channel the ledger does not declare";
    OVERALLOCATED_LOCATION = "E0603", "overallocated-location", "the shares of the channels one location serves add up to more than 100%";
    LEDGER_RULE_OUT_OF_RANGE = "E0604", "ledger-rule-out-of-range", "a ledger rule (share, cap, safety stock, minimum, reservation window) is outside its allowed range";

    UNUSED_IMPORT = "W0101", "unused-import", "an imported name is never used";
    UNUSED_DECLARATION = "W0102", "unused-declaration", "a connection, table or policy is declared and never used";
    UNREACHABLE_BRANCH = "W0401", "unreachable-branch", "a route branch can never be taken";
    UNFED_NODE = "W0402", "unfed-node", "a node reads from a route that never sends to it";
    ROUTE_WITHOUT_OTHERWISE = "W0403", "route-without-otherwise", "messages matching no branch of a route are dropped";
    UNORDERED_OVERWRITE = "W0404", "unordered-overwrite", "a sink whose operation overwrites records in the target has no `order_by`, so a retried older message can overwrite a newer one";
    RATE_EXCEEDS_QUOTA = "W0501", "rate-exceeds-quota", "a sink's rate or concurrency exceeds the connector's published quota";
}

/// Looks a code up by its id (`E0203`).
pub fn by_id(id: &str) -> Option<Code> {
    ALL.iter().copied().find(|code| code.id == id)
}
