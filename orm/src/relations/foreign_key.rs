use crate::connection::AsConnection;
use std::marker::PhantomData;
use std::panic::Location;

use super::hint::note_fix;
use crate::connection::AnyConnection;
use crate::error::Result;
use crate::fragment::{ColumnRef, Fragment};
use crate::key::{Compare, KeyCompare};
use crate::model::Model;

/// How a foreign key's value is read from a row: always there, or nullable.
#[doc(hidden)]
pub enum KeyOf<C, K> {
    /// A `NOT NULL` column.
    Required(fn(&C) -> K),
    /// A nullable column.
    Nullable(fn(&C) -> Option<K>),
}

impl<C, K> Clone for KeyOf<C, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, K> Copy for KeyOf<C, K> {}

impl<C, K> KeyOf<C, K> {
    pub(crate) fn get(&self, row: &C) -> Option<K> {
        match self {
            KeyOf::Required(f) => Some(f(row)),
            KeyOf::Nullable(f) => f(row),
        }
    }
}

/// What both kinds of foreign key know: the column of `C` and how to read and
/// filter it. Written by [`relation!`](crate::relation).
#[doc(hidden)]
pub struct Link<C, P: Model> {
    pub name: &'static str,
    pub column: fn() -> ColumnRef,
    /// The key's value in a child row: of the parent's key type.
    pub value: KeyOf<C, P::Key>,
    /// `child.column IN (keys)` (`= ANY($1)` on PostgreSQL).
    pub key_in: fn(Vec<P::Key>) -> Fragment,
    pub _models: PhantomData<fn() -> (C, P)>,
}

impl<C, P: Model> Clone for Link<C, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, P: Model> Copy for Link<C, P> {}

/// `pk = key` for model `P`, bound with the key column's type.
pub(crate) fn pk_eq<P: Model>(key: P::Key) -> Fragment {
    KeyCompare::fragment(ColumnRef::of(P::PrimaryKey::default()), Compare::Eq, key)
}

impl<C: Model, P: Model> Link<C, P> {
    /// `Message::sent_by`.
    pub(crate) fn path(&self) -> String {
        format!("{}::{}", C::NAME, self.name)
    }

    /// One query for the parent row of `child` by primary key, soft-deleted or not;
    /// `None` without a query when the key is NULL.
    fn get_at(
        &self,
        child: &C,
        conn: &mut AnyConnection,
        site: &'static Location<'static>,
    ) -> Result<Option<P>> {
        let Some(key) = self.value.get(child) else {
            return Ok(None);
        };
        note_fix(site, || format!("select_related `{}`", self.path()));
        let statement = P::objects()
            .with_deleted()
            .unordered()
            .filter_fragment(pk_eq::<P>(key))
            .select_statement();
        let rows = crate::queryset::run::run_read(site, || P::load_rows(&statement, conn))?;
        match rows.into_iter().next() {
            Some(parent) => Ok(Some(parent)),
            None => Err(crate::Error::NotFound { model: P::NAME }),
        }
    }
}

/// A many-to-one relation: each `C` row points at one `P` row through a `NOT NULL`
/// column of `C`'s table (`Message::sent_by`: message → person through `sent_by_id`).
///
/// Declared with [`relation!`](crate::relation); a typed value, so a misspelled
/// relation or one of another model does not compile. Use it with
/// [`select_related`](crate::QuerySet::select_related) (JOIN),
/// [`prefetch`](crate::QuerySet::prefetch) (one more query) or [`get`](Self::get)
/// (one row, on purpose).
pub struct ForeignKey<C, P: Model> {
    #[doc(hidden)]
    pub link: Link<C, P>,
}

/// A many-to-one relation through a nullable column (`Pin::pinned_by`, where a pin
/// may have no one): [`select_related`](crate::QuerySet::select_related) turns it
/// into a `LEFT JOIN` and an `Option<P>`.
///
/// Declared with [`relation!`](crate::relation) as `Child.name -> Option<Parent> (...)`.
pub struct NullableForeignKey<C, P: Model> {
    #[doc(hidden)]
    pub link: Link<C, P>,
}

macro_rules! common_impls {
    ($ty:ident, $arrow:literal) => {
        impl<C, P: Model> Clone for $ty<C, P> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<C, P: Model> Copy for $ty<C, P> {}

        impl<C: Model, P: Model> std::fmt::Debug for $ty<C, P> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}::{} {} {}", C::NAME, self.link.name, $arrow, P::NAME)
            }
        }

        impl<C: Model, P: Model> $ty<C, P> {
            /// The relation's name (`"sent_by"`).
            pub fn name(&self) -> &'static str {
                self.link.name
            }

            /// The foreign key column's name (`"sent_by_id"`).
            pub fn column_name(&self) -> &'static str {
                (self.link.column)().name
            }
        }
    };
}

common_impls!(ForeignKey, "->");
common_impls!(NullableForeignKey, "->?");

impl<C: Model, P: Model> ForeignKey<C, P> {
    /// Loads the row `child` points at: one query by primary key, soft-deleted or not
    /// (as [`select_related`](crate::QuerySet::select_related) does).
    ///
    /// Lazy access on purpose: in a loop over many rows this is the N+1 pattern, and
    /// [`detect_n_plus_one`](crate::instrument::detect_n_plus_one) reports it with the
    /// fix (`select_related `Message::sent_by``).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let message = Message::objects().filter(weave_message::id.eq(2)).get(&mut conn)?;
    /// let (sender, captured) = orm::capture(|| Message::sent_by.get(&message, &mut conn));
    /// assert_eq!(sender?.first_name, "Alan");
    /// assert_eq!(
    ///     captured.all()[0].sql,
    ///     "SELECT `weave_person`.`id`, `weave_person`.`created`, `weave_person`.`updated`, `weave_person`.`deleted`, `weave_person`.`first_name`, `weave_person`.`last_name`, `weave_person`.`email_address` FROM `weave_person` WHERE ((`weave_person`.`id` = ?))"
    /// );
    /// // On PostgreSQL: ... FROM "weave_person" WHERE (("weave_person"."id" = $1))
    /// assert_eq!(
    ///     Message::sent_by.get_sql(&message, Backend::Postgres)?,
    ///     r#"SELECT "weave_person"."id", "weave_person"."created", "weave_person"."updated", "weave_person"."deleted", "weave_person"."first_name", "weave_person"."last_name", "weave_person"."email_address" FROM "weave_person" WHERE (("weave_person"."id" = $1))"#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when no row has that key (a dangling
    /// key without a database constraint); [`Error::Query`](crate::Error::Query) when
    /// the database fails.
    #[track_caller]
    pub fn get(&self, child: &C, conn: &mut impl AsConnection) -> Result<P> {
        let conn = conn.connection();
        match self.link.get_at(child, conn, Location::caller())? {
            Some(parent) => Ok(parent),
            None => Err(crate::Error::NotFound { model: P::NAME }),
        }
    }

    /// The SQL [`get`](Self::get) sends on `backend` for `child`.
    pub fn get_sql(&self, child: &C, backend: crate::Backend) -> Result<String> {
        let Some(key) = self.link.value.get(child) else {
            return Err(crate::Error::NotFound { model: P::NAME });
        };
        P::objects()
            .with_deleted()
            .unordered()
            .filter_fragment(pk_eq::<P>(key))
            .sql(backend)
    }

    /// A chain for [`select_related`](crate::QuerySet::select_related): this key, then
    /// `next` from the row it reaches (a pin's message, then that message's sender).
    pub fn then<N: super::Join<P>>(self, next: N) -> super::Then<C, P, N> {
        super::Then { first: self, next }
    }

    /// This key joined under its own name `alias`, for
    /// [`select_related`](crate::QuerySet::select_related): a second key to a table
    /// already joined (a transfer's `to_account` beside its `from_account`), or a
    /// key to its own table (an employee's manager). The parent's columns are read
    /// as `"alias"."column"`; the rows are the same.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// // A message's sender, joined once under its table's name and once as "author".
    /// let qs = Message::objects().select_related((Message::sent_by, Message::sent_by.aliased("author")));
    /// assert!(qs.sql(Backend::Postgres)?.contains(
    ///     r#"INNER JOIN "weave_person" AS "author" ON "author"."id" = "weave_message"."sent_by_id""#
    /// ));
    /// assert!(qs.sql(Backend::Sqlite)?.contains(
    ///     "CROSS JOIN `weave_person` AS `author` ON `author`.`id` = `weave_message`.`sent_by_id`"
    /// ));
    /// # Ok(()) }
    /// ```
    pub const fn aliased(self, alias: &'static str) -> super::Aliased<Self> {
        super::Aliased {
            relation: self,
            alias,
        }
    }
}

impl<C: Model, P: Model> NullableForeignKey<C, P> {
    /// This key joined under its own name `alias` (`LEFT JOIN "t" AS "alias"`); see
    /// [`ForeignKey::aliased`].
    pub const fn aliased(self, alias: &'static str) -> super::Aliased<Self> {
        super::Aliased {
            relation: self,
            alias,
        }
    }

    /// Loads the row `child` points at, or `None` without a query when its key is
    /// NULL. Otherwise like [`ForeignKey::get`]: one query, soft-deleted or not.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when the key points at no row;
    /// [`Error::Query`](crate::Error::Query) when the database fails.
    #[track_caller]
    pub fn get(&self, child: &C, conn: &mut impl AsConnection) -> Result<Option<P>> {
        let conn = conn.connection();
        self.link.get_at(child, conn, Location::caller())
    }
}

/// Declares foreign keys and their reverse relations:
///
/// ```text
/// orm::relation! {
///     Message.sent_by -> Person (weave_message::sent_by_id), reverse Person.messages;
///     Pin.pinned_by -> Option<Person> (weave_pin::pinned_by_id), reverse Person.pins;
/// }
/// ```
///
/// makes `Message::sent_by` (a [`ForeignKey`]; with `Option<..>` a
/// [`NullableForeignKey`]) for [`select_related`](crate::QuerySet::select_related),
/// forward [`prefetch`](crate::QuerySet::prefetch) and lazy `get`, and
/// `Person::messages()` (a [`Reverse`](crate::relations::Reverse) hop for
/// [`prefetch`](crate::QuerySet::prefetch)). The columns are `BigInt` (`i64` /
/// `Option<i64>` on the row struct). The methods are inherent, so both models must be
/// of the crate that declares the relation (else build the hop with
/// [`Reverse::new`](crate::relations::Reverse::new)).
///
/// A nullable key is a `LEFT JOIN` and an `Option`:
///
/// ```
/// diesel::table! { author (id) { id -> BigInt, name -> Text, } }
/// diesel::table! { book (id) { id -> BigInt, title -> Text, editor_id -> Nullable<BigInt>, } }
///
/// #[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable)]
/// #[diesel(table_name = author)]
/// struct Author { id: i64, name: String }
///
/// #[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
/// #[diesel(table_name = book)]
/// struct Book { id: i64, title: String, editor_id: Option<i64> }
///
/// orm::model! { Author => author { primary_key: id } }
/// orm::model! { Book => book { primary_key: id, ordering: book::id.asc() } }
/// orm::relation! {
///     Book.editor -> Option<Author> (book::editor_id), reverse Author.edited;
/// }
///
/// # fn main() -> orm::Result<()> {
/// use diesel::connection::SimpleConnection;
/// use orm::prelude::*;
/// let db = Database::open(":memory:")?;
/// let mut conn = db.get()?;
/// conn.batch_execute(
///     "CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
///      CREATE TABLE book (id INTEGER PRIMARY KEY, title TEXT NOT NULL, editor_id BIGINT REFERENCES author (id));
///      INSERT INTO author VALUES (1, 'Max');
///      INSERT INTO book VALUES (1, 'Dune', 1), (2, 'Emma', NULL);",
/// ).map_err(diesel::result::Error::from)?;
///
/// let qs = Book::objects().select_related(Book::editor);
/// let books = qs.all(&mut conn)?;
/// assert_eq!(books[0].1.as_ref().map(|a| a.name.as_str()), Some("Max"));
/// assert_eq!(books[1].1, None);
/// assert_eq!(
///     qs.sql(Backend::Sqlite)?,
///     "SELECT `book`.`id`, `book`.`title`, `book`.`editor_id`, `author`.`id`, `author`.`name` FROM `book` LEFT JOIN `author` ON `author`.`id` = `book`.`editor_id` ORDER BY `book`.`id` ASC"
/// );
/// assert_eq!(
///     qs.sql(Backend::Postgres)?,
///     r#"SELECT "book"."id", "book"."title", "book"."editor_id", "author"."id", "author"."name" FROM "book" LEFT JOIN "author" ON "author"."id" = "book"."editor_id" ORDER BY "book"."id" ASC"#
/// );
///
/// // Lazy: no query for a NULL key.
/// let (editor, captured) = orm::capture(|| Book::editor.get(&books[1].0, &mut conn));
/// assert_eq!((editor?, captured.len()), (None, 0));
///
/// // Reverse over a nullable key: each author's books, one more query.
/// let authors = Author::objects().prefetch(Author::edited()).all(&mut conn)?;
/// assert_eq!(authors[0].1.iter().map(|b| b.title.as_str()).collect::<Vec<_>>(), ["Dune"]);
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! relation {
    () => {};
    (
        $child:ident . $name:ident -> Option<$parent:ident> ($table:ident :: $column:ident)
        $(, reverse $rparent:ident . $reverse:ident)? ;
        $($rest:tt)*
    ) => {
        impl $child {
            #[allow(non_upper_case_globals)]
            #[doc = concat!("The nullable many-to-one relation `", stringify!($child), "` → `", stringify!($parent), "` through `", stringify!($column), "`.")]
            pub const $name: $crate::relations::NullableForeignKey<$child, $parent> =
                $crate::relations::NullableForeignKey {
                    link: $crate::relation!(@link $child, $name, $table, $column, Nullable),
                };
        }
        $crate::relation!(@reverse $child, $name $(, $rparent, $reverse)?);
        $crate::relation!($($rest)*);
    };
    (
        $child:ident . $name:ident -> $parent:ident ($table:ident :: $column:ident)
        $(, reverse $rparent:ident . $reverse:ident)? ;
        $($rest:tt)*
    ) => {
        impl $child {
            #[allow(non_upper_case_globals)]
            #[doc = concat!("The many-to-one relation `", stringify!($child), "` → `", stringify!($parent), "` through `", stringify!($column), "`.")]
            pub const $name: $crate::relations::ForeignKey<$child, $parent> =
                $crate::relations::ForeignKey {
                    link: $crate::relation!(@link $child, $name, $table, $column, Required),
                };
        }
        $crate::relation!(@reverse $child, $name $(, $rparent, $reverse)?);
        $crate::relation!($($rest)*);
    };
    (@link $child:ident, $name:ident, $table:ident, $column:ident, $kind:ident) => {
        $crate::relations::Link {
            name: stringify!($name),
            column: || $crate::ColumnRef::of($table::$column),
            value: $crate::relation!(@value $kind, $child, $column),
            key_in: |keys| $crate::__private::key_in($crate::ColumnRef::of($table::$column), keys),
            _models: ::std::marker::PhantomData,
        }
    };
    (@value Required, $child:ident, $column:ident) => {
        $crate::relations::KeyOf::Required(|row: &$child| {
            ::std::convert::Into::into(::std::clone::Clone::clone(&row.$column))
        })
    };
    (@value Nullable, $child:ident, $column:ident) => {
        $crate::relations::KeyOf::Nullable(|row: &$child| {
            ::std::option::Option::map(::std::clone::Clone::clone(&row.$column), ::std::convert::Into::into)
        })
    };
    (@reverse $child:ident, $name:ident) => {};
    (@reverse $child:ident, $name:ident, $rparent:ident, $reverse:ident) => {
        impl $rparent {
            #[doc = concat!("The `", stringify!($child), "` rows pointing at a `", stringify!($rparent), "` through `", stringify!($child), "::", stringify!($name), "`: a prefetch hop.")]
            pub fn $reverse() -> $crate::relations::Reverse<$rparent, $child> {
                $crate::relations::Reverse::new(stringify!($reverse), $child::$name)
            }
        }
    };
}
