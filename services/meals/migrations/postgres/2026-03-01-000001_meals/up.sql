-- Dictionaries a municipality keeps: «Виды меню», «Возрастные категории»,
-- «Категории ПЧВР» (with a rate per meal kind: a percentage in basis points or a
-- fixed sum in kopecks, and the budget that funds it).
CREATE TABLE menu_types (
    municipality TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (municipality, code)
);
CREATE TABLE age_categories (
    municipality TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    min_age INTEGER NOT NULL,
    max_age INTEGER NOT NULL,
    PRIMARY KEY (municipality, code)
);
CREATE TABLE pchvr_categories (
    municipality TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    funder TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (municipality, code)
);
CREATE TABLE pchvr_rates (
    municipality TEXT NOT NULL,
    category TEXT NOT NULL,
    meal_kind TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (municipality, category, meal_kind)
);

-- Schools, their buildings (корпуса), classes, students and meal times. The
-- organizer link is per school, or per building where a building has its own.
CREATE TABLE schools (
    id TEXT PRIMARY KEY,
    municipality TEXT NOT NULL,
    name TEXT NOT NULL,
    credit_limit_kopecks BIGINT NOT NULL DEFAULT 0,
    organizer TEXT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE buildings (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    organizer TEXT NULL
);
CREATE TABLE classes (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    building_id TEXT NULL REFERENCES buildings (id),
    name TEXT NOT NULL,
    shift INTEGER NOT NULL
);
CREATE INDEX classes_school ON classes (school_id);
CREATE TABLE students (
    account TEXT PRIMARY KEY,
    school_id TEXT NOT NULL REFERENCES schools (id),
    class_id TEXT NOT NULL REFERENCES classes (id),
    full_name TEXT NOT NULL,
    birth_date DATE NOT NULL,
    category TEXT NULL,
    meal_kinds TEXT NOT NULL,
    menu_type TEXT NULL,
    home_schooled INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX students_class ON students (class_id);
CREATE INDEX students_school ON students (school_id);
CREATE TABLE meal_times (
    school_id TEXT NOT NULL REFERENCES schools (id),
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    shift INTEGER NOT NULL,
    starts_at TEXT NOT NULL,
    PRIMARY KEY (school_id, code)
);

-- The organizer's catalogue. A complex is versioned: once a parent chose it, a
-- change makes a new version and the orders keep the one they chose.
CREATE TABLE dishes (
    id TEXT PRIMARY KEY,
    organizer TEXT NOT NULL,
    name TEXT NOT NULL,
    yield_grams INTEGER NOT NULL,
    price_kopecks BIGINT NOT NULL,
    allergens TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE complexes (
    id TEXT PRIMARY KEY,
    organizer TEXT NOT NULL,
    code TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    menu_type TEXT NOT NULL,
    age_category TEXT NOT NULL,
    meal_kind TEXT NOT NULL,
    price_kopecks BIGINT NOT NULL,
    dishes TEXT NOT NULL,
    current INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organizer, code, version)
);
CREATE TABLE extras (
    id TEXT PRIMARY KEY,
    organizer TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    price_kopecks BIGINT NOT NULL,
    active INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- What a school is offered on a day and meal kind; one offer is the «комплекс дня».
CREATE TABLE day_menus (
    school_id TEXT NOT NULL REFERENCES schools (id),
    date DATE NOT NULL,
    meal_kind TEXT NOT NULL,
    complex_code TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    PRIMARY KEY (school_id, date, meal_kind, complex_code)
);
-- A day's menu that offered parents fewer than two complexes: the organizer is told.
CREATE TABLE menu_notices (
    school_id TEXT NOT NULL,
    date DATE NOT NULL,
    meal_kind TEXT NOT NULL,
    organizer TEXT NOT NULL,
    offered INTEGER NOT NULL,
    noticed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (school_id, date, meal_kind)
);

-- Parents' orders, one per student, day and meal kind.
CREATE TABLE orders (
    account TEXT NOT NULL REFERENCES students (account),
    date DATE NOT NULL,
    meal_kind TEXT NOT NULL,
    complex_id TEXT NULL REFERENCES complexes (id),
    extras TEXT NOT NULL,
    confirmed INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account, date, meal_kind)
);
CREATE INDEX orders_date ON orders (date);

-- The first lesson's attendance mark, for every meal time of the day.
CREATE TABLE attendance (
    account TEXT NOT NULL,
    date DATE NOT NULL,
    present INTEGER NOT NULL,
    source TEXT NOT NULL,
    marked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account, date)
);

-- Class teachers' meal requests (заявки на питание) and their lines.
CREATE TABLE meal_requests (
    id TEXT PRIMARY KEY,
    school_id TEXT NOT NULL,
    class_id TEXT NOT NULL,
    date DATE NOT NULL,
    meal_time TEXT NOT NULL,
    meal_kind TEXT NOT NULL,
    closed INTEGER NOT NULL,
    formed_by TEXT NOT NULL,
    formed_at TIMESTAMP NOT NULL,
    confirmed_by TEXT NULL,
    confirmed_at TIMESTAMP NULL,
    UNIQUE (class_id, date, meal_time)
);
CREATE INDEX meal_requests_school ON meal_requests (school_id, date);
CREATE TABLE request_lines (
    request_id TEXT NOT NULL REFERENCES meal_requests (id),
    account TEXT NOT NULL,
    complex_id TEXT NULL,
    source TEXT NOT NULL,
    price_kopecks BIGINT NOT NULL,
    reimbursed_kopecks BIGINT NOT NULL,
    extras_kopecks BIGINT NOT NULL,
    to_pay_kopecks BIGINT NOT NULL,
    balance_kopecks BIGINT NOT NULL,
    included INTEGER NOT NULL,
    reason TEXT NULL,
    ate INTEGER NULL,
    category TEXT NULL,
    funder TEXT NULL,
    PRIMARY KEY (request_id, account)
);

-- One row per school and day closed: the close happens once (the key), and says
-- when and what it wrote off.
CREATE TABLE day_closes (
    school_id TEXT NOT NULL,
    date DATE NOT NULL,
    closed_at TIMESTAMP NOT NULL,
    late INTEGER NOT NULL,
    debits INTEGER NOT NULL,
    to_pay_kopecks BIGINT NOT NULL,
    reimbursed_kopecks BIGINT NOT NULL,
    PRIMARY KEY (school_id, date)
);
-- Each debit sent to payments, with the reimbursed (budget) part for reports,
-- and payments' answer.
CREATE TABLE write_offs (
    key TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    school_id TEXT NOT NULL,
    class_id TEXT NOT NULL,
    date DATE NOT NULL,
    meal_time TEXT NOT NULL,
    amount_kopecks BIGINT NOT NULL,
    reimbursed_kopecks BIGINT NOT NULL,
    category TEXT NULL,
    funder TEXT NULL,
    organizer TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX write_offs_school ON write_offs (school_id, date);
CREATE INDEX write_offs_account ON write_offs (account, status);

-- Balances as payments last reported them (BalanceChanged events).
CREATE TABLE balances (
    account TEXT PRIMARY KEY,
    balance_kopecks BIGINT NOT NULL,
    movement_id TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
