package stores

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/datarights/datarights/config"
	"github.com/datarights/datarights/rights"
)

// Exports through a rights.TextSink read the columns of common types as
// text, as Postgres writes them, and pass the bytes on with a kind per
// column: no Go value is made for them. Columns of other types (arrays,
// ranges, composites…) stay binary and are decoded as Values would.

// textKinds are the types read as text, and how each is written.
var textKinds = map[uint32]rights.ValueKind{
	pgtype.Int2OID: rights.KindNumber, pgtype.Int4OID: rights.KindNumber, pgtype.Int8OID: rights.KindNumber,
	pgtype.OIDOID: rights.KindNumber, pgtype.Float4OID: rights.KindNumber, pgtype.Float8OID: rights.KindNumber,
	pgtype.NumericOID: rights.KindNumber,
	pgtype.BoolOID:    rights.KindBool,
	pgtype.TextOID:    rights.KindString, pgtype.VarcharOID: rights.KindString, pgtype.BPCharOID: rights.KindString,
	pgtype.NameOID: rights.KindString, pgtype.UUIDOID: rights.KindString, pgtype.InetOID: rights.KindString,
	pgtype.CIDROID: rights.KindString, pgtype.MacaddrOID: rights.KindString, pgtype.DateOID: rights.KindString,
	pgtype.TimeOID: rights.KindString, pgtype.IntervalOID: rights.KindString, pgtype.XMLOID: rights.KindString,
	pgtype.JSONOID: rights.KindJSON, pgtype.JSONBOID: rights.KindJSON,
	pgtype.TimestamptzOID: rights.KindTimestampTZ, pgtype.TimestampOID: rights.KindTimestamp,
	pgtype.ByteaOID: rights.KindBytes,
}

var textFormats = func() pgx.QueryResultFormatsByOID {
	formats := pgx.QueryResultFormatsByOID{}
	for oid := range textKinds {
		formats[oid] = pgx.TextFormatCode
	}
	return formats
}()

func (p *Postgres) exportText(ctx context.Context, tx pgx.Tx, table config.Table, query string, keys []string, sink rights.TextSink) (rights.DatasetReport, error) {
	rows, err := tx.Query(ctx, query, textFormats, keys)
	if err != nil {
		return rights.DatasetReport{}, p.errorf("export "+table.Name, err)
	}
	defer rows.Close()

	fields := rows.FieldDescriptions()
	columns := make([]string, len(fields))
	kinds := make([]rights.ValueKind, len(fields))
	for i, f := range fields {
		columns[i] = f.Name
		kind, ok := textKinds[f.DataTypeOID]
		if !ok || f.Format != pgx.TextFormatCode {
			kind = rights.KindValue
		}
		kinds[i] = kind
	}
	// An unfinished dataset is left unclosed on error: Close means "complete",
	// and the retried Export writes the dataset again from the start.
	w, err := sink.TextDataset(table.Name, columns, kinds)
	if err != nil {
		return rights.DatasetReport{}, fmt.Errorf("store %s: start dataset %s: %w", p.cfg.Name, table.Name, err)
	}
	typeMap := tx.Conn().TypeMap()
	values := make([]any, len(fields))
	for rows.Next() {
		raw := rows.RawValues()
		for i, kind := range kinds {
			if kind != rights.KindValue {
				continue
			}
			values[i] = nil
			if raw[i] == nil {
				continue
			}
			typ, ok := typeMap.TypeForOID(fields[i].DataTypeOID)
			if !ok {
				values[i] = string(raw[i]) // unknown types come as text
				continue
			}
			if values[i], err = typ.Codec.DecodeValue(typeMap, fields[i].DataTypeOID, fields[i].Format, raw[i]); err != nil {
				return rights.DatasetReport{}, p.errorf("export "+table.Name, err)
			}
		}
		if err := w.WriteTextRow(raw, values); err != nil {
			return rights.DatasetReport{}, fmt.Errorf("store %s: write dataset %s: %w", p.cfg.Name, table.Name, err)
		}
	}
	return p.finishDataset(table, rows, w.Close)
}
