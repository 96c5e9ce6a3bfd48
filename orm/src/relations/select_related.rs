use std::panic::Location;
use std::sync::Arc;

use diesel::query_builder::{AstPass, QueryFragment};
use diesel::QueryResult;

use super::ForeignKey;
use crate::connection::{AnyConnection, Backend, Db};
use crate::fragment::{render, ColumnRef, Fragment};
use crate::model::Model;
use crate::queryset::run::run;
use crate::queryset::statement::SelectStatement;
use crate::queryset::QuerySet;

/// The statement that loads `(C, P)` pairs through an INNER JOIN.
pub type JoinedSelect<C, P> = SelectStatement<(
    diesel::helper_types::AsSelect<C, Db>,
    diesel::helper_types::AsSelect<P, Db>,
)>;

/// A queryset of `C` rows, each with its `P` row loaded by the same query's JOIN.
///
/// Made by [`QuerySet::select_related`]; terminal methods return `(C, P)` pairs.
pub struct Related<C: Model, P: Model> {
    qs: QuerySet<C>,
    fk: ForeignKey<C, P>,
}

impl<C: Model, P: Model> Clone for Related<C, P> {
    fn clone(&self) -> Self {
        Self {
            qs: self.qs.clone(),
            fk: self.fk,
        }
    }
}

impl<C: Model> QuerySet<C> {
    /// Loads each row's `P` (the target of foreign key `fk`) in the same query, by
    /// `INNER JOIN`: `n` rows with their related rows in 1 query instead of `1 + n`.
    ///
    /// The queryset's filters, ordering and slice apply to `C`. The related row is
    /// returned whether or not it is soft-deleted, as Django does: a live message of a
    /// deleted sender still has its sender.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Message::objects().select_related(Message::sent_by).limit(2);
    /// let (pairs, captured) = orm::capture(|| qs.all(&mut conn));
    /// let pairs = pairs?;
    /// assert_eq!(captured.len(), 1);
    /// assert_eq!(pairs[0].1.first_name, "Alan");
    /// assert_eq!(
    ///     qs.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id", "weave_person"."id", "weave_person"."created", "weave_person"."updated", "weave_person"."deleted", "weave_person"."first_name", "weave_person"."last_name", "weave_person"."email_address" FROM "weave_message" INNER JOIN "weave_person" ON "weave_person"."id" = "weave_message"."sent_by_id" WHERE ("weave_message"."deleted" = false) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC LIMIT $1"#
    /// );
    /// assert!(qs.sql(Backend::Sqlite)?.contains("FROM `weave_message` INNER JOIN `weave_person` ON `weave_person`.`id` = `weave_message`.`sent_by_id`"));
    /// # Ok(()) }
    /// ```
    ///
    /// A relation of another model does not compile (unlike Django's
    /// `"messages__sent_by"` strings):
    ///
    /// ```compile_fail
    /// # include!("../../doctest_setup.rs");
    /// # fn main() {
    /// use orm::prelude::*;
    /// let qs = Thread::objects().select_related(Message::sent_by); // a Message relation
    /// # }
    /// ```
    pub fn select_related<P: Model>(self, fk: ForeignKey<C, P>) -> Related<C, P> {
        Related { qs: self, fk }
    }
}

impl<C: Model, P: Model> Related<C, P> {
    /// The queryset of `C` rows this loads.
    pub fn queryset(&self) -> &QuerySet<C> {
        &self.qs
    }

    /// At most `n` rows.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.qs = self.qs.limit(n);
        self
    }

    /// Skips the first `n` rows.
    #[must_use]
    pub fn offset(mut self, n: u64) -> Self {
        self.qs = self.qs.offset(n);
        self
    }

    pub(crate) fn foreign_key(&self) -> ForeignKey<C, P> {
        self.fk
    }

    pub(crate) fn statement(&self) -> JoinedSelect<C, P> {
        let mut source = self.qs.source();
        source.table = Arc::new(InnerJoin {
            left: Arc::new(C::Table::default()),
            right: Arc::new(P::Table::default()),
            right_pk: ColumnRef::of(P::PrimaryKey::default()),
            left_fk: (self.fk.column)(),
        });
        SelectStatement::new((C::selection(), P::selection()), source)
    }

    /// Loads the pairs (one query).
    #[track_caller]
    pub fn all(&self, conn: &mut AnyConnection) -> crate::Result<Vec<(C, P)>> {
        self.all_at(conn, Location::caller())
    }

    pub(crate) fn all_at(
        &self,
        conn: &mut AnyConnection,
        site: &'static Location<'static>,
    ) -> crate::Result<Vec<(C, P)>> {
        let statement = self.statement();
        run(site, || (self.fk.load_joined)(&statement, conn))
    }

    /// The SQL `all()` sends on `backend`.
    pub fn sql(&self, backend: Backend) -> crate::Result<String> {
        Ok(render(&self.statement(), backend)?)
    }
}

/// `left INNER JOIN right ON right.pk = left.fk`.
struct InnerJoin {
    left: Fragment,
    right: Fragment,
    right_pk: ColumnRef,
    left_fk: ColumnRef,
}

impl QueryFragment<Db> for InnerJoin {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.left.walk_ast(out.reborrow())?;
        out.push_sql(" INNER JOIN ");
        self.right.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        self.right_pk.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" = ");
        self.left_fk.qualified.walk_ast(out.reborrow())
    }
}
