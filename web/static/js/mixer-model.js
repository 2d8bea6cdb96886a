// The audio mixer panel's decisions (pure; tested in node): meter geometry, gain labels, which
// strips to show, and what a control change sends to POST /api/switcher/audio.

/** The meters' range: -60 dBFS at the bottom, 0 dBFS at the top. */
export const METER_FLOOR_DB = -60;
/** The faders' range, as the server accepts it. */
export const GAIN_MIN_DB = -60;
export const GAIN_MAX_DB = 12;
/** How often the page asks for levels while visible. */
export const LEVELS_EVERY_MS = 150;
/** A fader moved by hand sends at most this often while it moves. */
export const FADER_SEND_MS = 100;

/** A level in dBFS as a share of the meter's height (0..1). */
export function meterFraction(db) {
  if (!Number.isFinite(db) || db <= METER_FLOOR_DB) return 0;
  return Math.min(1, (db - METER_FLOOR_DB) / -METER_FLOOR_DB);
}

/** "-6.0 dB", "+3.5 dB", "0 dB". */
export function gainLabel(db) {
  if (!Number.isFinite(db)) return '';
  if (Math.abs(db) < 0.05) return '0 dB';
  return `${db > 0 ? '+' : '−'}${Math.abs(db).toFixed(1)} dB`;
}

/** The meter's readout: peak hold in dBFS, or "–" for silence. */
export function levelLabel(level) {
  const db = level?.hold_db;
  return Number.isFinite(db) && db > METER_FLOOR_DB ? `${db.toFixed(1)}` : '–';
}

/**
 * The strips to show, in the inputs' order: every source the switcher lists (live), each with
 * its strip from the mixer settings (the default until set), plus sources the mixer has a strip
 * for but that are not live (greyed). `audio` is the state's `audio` (or null: no mixer).
 */
export function stripRows(audio, sourceNames) {
  if (!audio) return [];
  const strips = audio.strips ?? {};
  const rows = sourceNames.map((name) => ({ name, live: true, strip: strips[name] ?? DEFAULT_STRIP }));
  for (const name of Object.keys(strips).sort()) {
    if (!sourceNames.includes(name)) rows.push({ name, live: false, strip: strips[name] });
  }
  return rows;
}

export const DEFAULT_STRIP = Object.freeze({ gain_db: 0, mute: false, mode: 'afv' });

/** The body POSTed for a control change of `source` (`master` for the master fader). */
export function changeBody(source, control, value) {
  if (source === null) return { master_gain_db: Number(value) };
  switch (control) {
    case 'gain': return { source, gain_db: Number(value) };
    case 'mute': return { source, mute: Boolean(value) };
    case 'mode': return { source, mode: value };
    default: throw new Error(`unknown control ${control}`);
  }
}

/** Whether a strip is heard on program now: its mode, mute and the program/pin (for the tally). */
export function audible(strip, name, program, pin) {
  if (strip.mute) return false;
  if (pin) return pin === name;
  return strip.mode === 'on' || (strip.mode === 'afv' && program === name);
}
