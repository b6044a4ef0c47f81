//! The import against the memory store: messy rows, contested and conflicting
//! numbers, the report's JSON, an interrupted run and held replies.

use std::sync::atomic::{AtomicUsize, Ordering};

use ibiki_core::{
    AssignmentChange, AssignmentStore, Change, ClientId, ClientSummary, Contested, ImportConflict,
    ImportPlan, ImportPlanner, ImportReport, ImportRow, InvalidImport, InvalidReason, Normalizer,
    NumberError, Page, PageRequest, PhoneNumber, PhoneNumbersInput, StoreError,
};
use ibiki_memory::MemoryStore;

fn us() -> Normalizer {
    Normalizer::new().with_default_region("US".parse().expect("US"))
}

fn n(text: &str) -> PhoneNumber {
    PhoneNumber::parse_canonical(text).expect("canonical")
}

fn id(text: &str) -> ClientId {
    ClientId::new(text).expect("client id")
}

fn plan_of(rows: Vec<ImportRow>) -> ImportPlan {
    let mut planner = ImportPlanner::new(us());
    for row in rows {
        planner.push(row);
    }
    planner.finish()
}

#[tokio::test]
async fn messy_rows_are_read_entry_by_entry() {
    let plan = plan_of(vec![
        ImportRow::new(
            "acme",
            "+1 415 555 0100, (415) 555-0101,, 14155550100, +1111",
        ),
        ImportRow::new("globex", PhoneNumbersInput::List(vec![])),
        ImportRow::new("globex", ""),
        ImportRow::new("globex", vec!["  ", "415.555.0102"]),
        // The same client again: its numbers add up.
        ImportRow::new("acme", vec!["+14155550103", "+1 (415) 555-0101"]),
        ImportRow::new("", "+14155550104"),
    ]);
    let store = MemoryStore::new();
    let report = plan.apply(&store).await.expect("import");
    assert_eq!(report.clients, 3);
    assert_eq!(report.entries, 8);
    assert_eq!(report.empty_rows, 2);
    assert_eq!(report.duplicates, 2);
    assert_eq!(report.assigned, 4);
    let invalid: Vec<(&str, usize, &str)> = report
        .invalid
        .iter()
        .map(|i| (i.user_id.as_str(), i.index, i.input.as_str()))
        .collect();
    assert_eq!(invalid, [("acme", 4, "+1111"), ("", 0, "+14155550104")]);
    assert!(matches!(
        report.invalid[1].reason,
        InvalidReason::ClientId(_)
    ));
    assert_eq!(report.accounted(), report.entries);
    assert_eq!(
        store.numbers_of(&id("acme")).await.expect("read"),
        [n("+14155550100"), n("+14155550101"), n("+14155550103")]
    );
    assert_eq!(
        store.numbers_of(&id("globex")).await.expect("read"),
        [n("+14155550102")]
    );
}

#[tokio::test]
async fn contested_and_conflicting_numbers_are_left_out_and_listed() {
    let store = MemoryStore::new();
    store
        .add_numbers(&id("umbrella"), &[n("+14155550105")])
        .await
        .expect("setup");
    let plan = plan_of(vec![
        ImportRow::new("acme", "+14155550100, +14155550105, +14155550101"),
        ImportRow::new("globex", "4155550100"),
        ImportRow::new("initech", "+1 415 555 0100"),
    ]);
    let dry = plan.dry_run(&store).await.expect("dry run");
    let report = plan.apply(&store).await.expect("import");
    assert_eq!(
        report.contested,
        [Contested {
            phone_number: n("+14155550100"),
            user_ids: vec![id("acme"), id("globex"), id("initech")],
        }]
    );
    assert_eq!(
        report.conflicts,
        [ImportConflict {
            phone_number: n("+14155550105"),
            user_id: id("acme"),
            owner_user_id: id("umbrella"),
        }]
    );
    assert_eq!(report.assigned, 1);
    assert!(!report.is_complete());
    assert_eq!(
        ImportReport {
            dry_run: false,
            ..dry
        },
        report
    );
    assert_eq!(store.owner_of(n("+14155550100")).await.expect("read"), None);
    assert_eq!(
        store.owner_of(n("+14155550105")).await.expect("read"),
        Some(id("umbrella"))
    );
}

#[test]
fn the_json_report_has_the_documented_fields() {
    let report = ImportReport {
        dry_run: true,
        clients: 2,
        entries: 4,
        empty_rows: 1,
        duplicates: 0,
        assigned: 1,
        already_assigned: 0,
        released: 0,
        invalid: vec![InvalidImport {
            user_id: "acme".into(),
            index: 1,
            input: "+1111".into(),
            reason: InvalidReason::Number(NumberError::NotValid),
        }],
        contested: vec![Contested {
            phone_number: n("+14155550100"),
            user_ids: vec![id("acme"), id("globex")],
        }],
        conflicts: vec![ImportConflict {
            phone_number: n("+14155550101"),
            user_id: id("acme"),
            owner_user_id: id("umbrella"),
        }],
    };
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "dryRun": true, "clients": 2, "entries": 4, "emptyRows": 1, "duplicates": 0,
            "assigned": 1, "alreadyAssigned": 0, "released": 0,
            "invalid": [{"userId": "acme", "index": 1, "input": "+1111",
                         "reason": "not a valid number for its country"}],
            "contested": [{"phoneNumber": "+14155550100", "userIds": ["acme", "globex"]}],
            "conflicts": [{"phoneNumber": "+14155550101", "userId": "acme",
                           "ownerUserId": "umbrella"}],
        })
    );
}

/// A memory store whose `add_numbers` fails once `allowed` calls succeeded:
/// a connection lost in the middle of an import.
#[derive(Debug)]
struct Failing {
    inner: MemoryStore,
    allowed: AtomicUsize,
}

#[async_trait::async_trait]
impl AssignmentStore for Failing {
    async fn change_numbers(
        &self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        if change == Change::Add {
            let left = self.allowed.load(Ordering::SeqCst);
            if left == 0 {
                return Err(StoreError::Unavailable("connection lost".into()));
            }
            self.allowed.store(left - 1, Ordering::SeqCst);
        }
        self.inner.change_numbers(client, numbers, change).await
    }

    async fn numbers_of(&self, client: &ClientId) -> Result<Vec<PhoneNumber>, StoreError> {
        self.inner.numbers_of(client).await
    }

    async fn owner_of(&self, number: PhoneNumber) -> Result<Option<ClientId>, StoreError> {
        self.inner.owner_of(number).await
    }

    async fn owner_at(
        &self,
        number: PhoneNumber,
        at: time::OffsetDateTime,
    ) -> Result<Option<ClientId>, StoreError> {
        self.inner.owner_at(number, at).await
    }

    async fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<ibiki_core::HistoryEvent>, StoreError> {
        self.inner.history(number, page).await
    }

    async fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        self.inner.list_clients(prefix, page).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn an_interrupted_import_leaves_whole_clients_and_a_rerun_completes_it() {
    let rows: Vec<ImportRow> = (0..30)
        .map(|c| {
            let numbers: Vec<String> = (0..3).map(|k| format!("+1415555{c:02}{k:02}")).collect();
            ImportRow::new(format!("client-{c}"), numbers)
        })
        .collect();
    let plan = plan_of(rows);
    let store = Failing {
        inner: MemoryStore::new(),
        allowed: AtomicUsize::new(11),
    };
    let error = plan.apply(&store).await.expect_err("interrupted");
    assert!(error.is_store_failure(), "{error}");
    let mut whole = 0;
    for (client, numbers) in plan.clients() {
        let owned = store.inner.numbers_of(client).await.expect("read");
        assert!(
            owned.is_empty() || owned == *numbers,
            "{client} is half assigned: {owned:?}"
        );
        whole += usize::from(!owned.is_empty());
    }
    assert_eq!(whole, 11);

    store.allowed.store(usize::MAX, Ordering::SeqCst);
    let report = plan.apply(&store).await.expect("rerun");
    assert_eq!((report.assigned, report.already_assigned), (19 * 3, 11 * 3));
    assert!(report.is_complete());
    for (client, numbers) in plan.clients() {
        assert_eq!(
            store.inner.numbers_of(client).await.expect("read"),
            *numbers
        );
    }
}

#[tokio::test]
async fn an_import_never_removes_and_releases_held_replies() {
    use ibiki_core::ReplyStore;
    let store = MemoryStore::new();
    store
        .add_numbers(&id("acme"), &[n("+14155550109")])
        .await
        .expect("setup");
    let now = time::OffsetDateTime::now_utc();
    for body in ["one", "two"] {
        let raw = ibiki_core::RawReply {
            message_id: None,
            from: "+15005550006",
            to: "+14155550100",
            body,
        };
        let reply = ibiki_core::InboundReply::new(&us(), raw, now).expect("reply");
        assert_eq!(
            store.receive(reply).await.expect("held"),
            ibiki_core::Receipt::Held
        );
    }
    let plan = plan_of(vec![ImportRow::new("acme", "+14155550100")]);
    let report = plan.apply(&store).await.expect("import");
    assert_eq!(report.released, 2);
    assert_eq!(
        store.numbers_of(&id("acme")).await.expect("read"),
        [n("+14155550100"), n("+14155550109")]
    );
    let inbox = store
        .inbox(&id("acme"), &PageRequest::first(10))
        .await
        .expect("inbox");
    assert_eq!(inbox.items.len(), 2);
}

#[cfg(feature = "csv")]
mod csv {
    use ibiki_core::{CsvError, CsvRows, ImportRow};

    fn read(text: &str) -> Result<Vec<ImportRow>, CsvError> {
        CsvRows::new(text.as_bytes())?.collect()
    }

    #[test]
    fn quoted_lists_single_numbers_and_empty_fields() {
        let rows = read(
            "\u{feff}userId,phoneNumbers\n\
             42,\"+1 415 555 0100, (415) 555-0101\"\n\
             43, 14155550102 \n\
             44,\n\
             45\n\
             \"a, b\",+14155550103\n",
        )
        .expect("csv");
        assert_eq!(
            rows,
            [
                ImportRow::new("42", "+1 415 555 0100, (415) 555-0101"),
                ImportRow::new("43", "14155550102"),
                ImportRow::new("44", ""),
                ImportRow::new("45", ""),
                ImportRow::new("a, b", "+14155550103"),
            ]
        );
    }

    #[test]
    fn an_unquoted_list_in_the_last_column_is_read_whole() {
        let rows =
            read("email,userId,phoneNumbers\nx@y,42,+14155550100,+14155550101\n").expect("csv");
        assert_eq!(rows, [ImportRow::new("42", "+14155550100,+14155550101")]);
        let error =
            read("phoneNumbers,userId\n+14155550100,42,+14155550101\n").expect_err("ambiguous");
        assert!(
            matches!(
                error,
                CsvError::FieldCount {
                    line: 2,
                    fields: 3,
                    header: 2
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_header_without_the_columns_is_refused_naming_what_it_has() {
        let error = read("user,phones\n42,+14155550100\n").expect_err("no userId");
        assert_eq!(
            error.to_string(),
            "the CSV header has no \"userId\" column (it has: user, phones)"
        );
        assert!(read("").is_err());
        let bytes: &[u8] = b"userId,phoneNumbers\n42,\"\xff\"\n";
        let error = CsvRows::new(bytes)
            .expect("header")
            .collect::<Result<Vec<_>, _>>()
            .expect_err("invalid UTF-8");
        assert!(matches!(error, CsvError::Csv(_)), "{error}");
    }

    proptest::proptest! {
        /// Any bytes after a valid header: rows or an error, never a panic,
        /// and every row the planner reads is accounted for.
        #[test]
        fn any_csv_reads_without_panicking(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut bytes = b"userId,phoneNumbers\n".to_vec();
            bytes.extend(body);
            let mut planner = ibiki_core::ImportPlanner::new(ibiki_core::Normalizer::new());
            let mut rows = 0;
            for row in CsvRows::new(bytes.as_slice()).expect("header") {
                match row {
                    Ok(row) => {
                        planner.push(row);
                        rows += 1;
                    }
                    Err(_) => break,
                }
            }
            proptest::prop_assert_eq!(planner.rows(), rows);
        }
    }
}
