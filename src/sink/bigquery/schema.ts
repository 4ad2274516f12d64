// Owns what BigQuery's table definitions mean to the core: a tables.get resource as the contract's
// TableSchema (columns, deduplication, version), and a route's DDL template made into the statement
// that creates a missing table.
import { createHash } from 'node:crypto';
import { ErrorClasses } from '../../errors/classes.ts';
import { WarehouseError } from '../errors.ts';
import type { ColumnInfo, Deduplication, TableRef, TableSchema } from '../types.ts';
import type { FieldResource, TableResource } from './api.ts';

/**
 * BigQuery keeps a job — and so refuses its id again — for six months (jobs.list's history); a
 * token replayed later than that would load again.
 */
export const JOB_ID_RETENTION_SECONDS = 180 * 24 * 3600;

export const bigQueryDeduplication: Deduplication = {
  engine: 'BigQuery load jobs',
  byToken: true,
  setting: undefined,
  windowBlocks: undefined,
  windowSeconds: JOB_ID_RETENTION_SECONDS,
  reason: undefined,
};

/** A column per top-level field (a RECORD's sub-fields are the column's type, not columns). */
function columnOf(field: FieldResource): ColumnInfo {
  const type = field.mode === 'REPEATED' ? `ARRAY<${field.type}>` : field.type;
  // A field with a default takes it when a load leaves the field out (ClickHouse's DEFAULT).
  return { name: field.name, type, defaultKind: field.defaultValueExpression === undefined ? '' : 'DEFAULT' };
}

/**
 * The definition's version: a digest of the schema as loads see it (every field, nested ones too,
 * with its type, mode and default). Not the table's etag: the emulator has none, and on BigQuery
 * the etag is a hash of the whole table resource (row count, size, last-modified time), so each
 * load would look like a change of the definition — putting ranges in doubt (delivery.md §11) for
 * nothing. A change and its revert read alike, which §11 needs to tell apart only for a retry
 * that the warehouse judges anew; a BigQuery retry under the same token gets the first attempt's
 * job and its verdict (jobs.ts), whatever the table became in between.
 */
export function schemaVersion(fields: readonly FieldResource[]): string {
  const canonical = (list: readonly FieldResource[]): unknown[] =>
    list.map((f) => [f.name, f.type, f.mode ?? 'NULLABLE', f.defaultValueExpression ?? null, f.fields === undefined ? null : canonical(f.fields)]);
  return createHash('sha256')
    .update(JSON.stringify(canonical(fields)))
    .digest('base64url')
    .slice(0, 22);
}

export function tableSchemaOf(resource: TableResource): TableSchema {
  const fields = resource.schema?.fields ?? [];
  return {
    columns: fields.map(columnOf),
    deduplication: bigQueryDeduplication,
    // TIMESTAMP is an instant; a DATETIME without zone is read as given. UTC for the encoder.
    timezone: 'UTC',
    version: schemaVersion(fields),
  };
}

/** Names BigQuery takes unquoted as a dataset or a table (the subset this adapter accepts). */
const plainIdentifier = /^[A-Za-z0-9_]{1,1024}$/;

/** The template's `{database}` (the dataset) and `{table}` as backquoted identifiers. */
export function renderTableDdl(table: TableRef, template: string | undefined): string {
  if (template === undefined) {
    throw new WarehouseError(
      ErrorClasses.missingObject,
      `table ${table.database}.${table.table} does not exist, and a BigQuery destination creates tables only from a DDL file (route createTable.ddlFile with {database} and {table}): BigQuery has no schema-less table`,
      undefined,
      undefined,
    );
  }
  for (const [what, name] of [
    ['dataset', table.database],
    ['table', table.table],
  ] as const) {
    if (!plainIdentifier.test(name)) {
      throw new WarehouseError(ErrorClasses.missingObject, `cannot create ${what} name ${JSON.stringify(name.slice(0, 200))}: only letters, digits and _ are accepted`, undefined, undefined);
    }
  }
  return template.replaceAll('{database}', `\`${table.database}\``).replaceAll('{table}', `\`${table.table}\``);
}
